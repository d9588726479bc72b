"""Training losses shared by the models (adversarial, reconstruction, VGG-feature, ID-MRF).
Import from the defining module, e.g. ``from zoo.losses.adversarial import AdversarialLoss``.

- ``adversarial``: ``AdversarialLoss(kind)`` (vanilla / lsgan / hinge / wgan) and
  ``gradient_penalty`` (WGAN-GP, DeepFill v1's masked form);
- ``reconstruction``: masked L1 / L2, spatial discounting, GMCNN confidence-driven L1, total
  variation, feature matching (EdgeConnect), guidance (Shift-Net);
- ``perceptual``: ``gram_matrix``, ``PerceptualLoss``, ``StyleLoss`` and the PartialConv /
  EdgeConnect / Shift-Net presets on ``zoo.layers.vgg.VGGFeatures``;
- ``id_mrf``: GMCNN's ``IDMRFLoss``;
- ``mrf``: the MSNPS neural-patch texture loss and its content / TV terms.
"""
