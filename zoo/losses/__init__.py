"""Training losses shared by the models (adversarial, reconstruction, VGG-feature, ID-MRF).
Import from the defining module, e.g. ``from zoo.losses.adversarial import hinge_d_loss``."""
