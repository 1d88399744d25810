NAME = 'inceptionv1'
