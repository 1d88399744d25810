NAME = 'alexnet'
