"""Networks and their training: the baselines' generators and discriminators, GAN losses, history
pools, the training loop every network translator shares, and the image scale networks see."""

from benchbias.foundation.exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "networks": ["impartial_cnn", "init_weights", "patch_discriminator", "resnet_generator"],
        "losses": ["GAN_MODES", "GANLoss", "gan_loss"],
        "image_pool": ["ImagePool", "PoolStack"],
        "translation": ["GENERATOR_PARAMS", "AdversarialTranslator", "ModelStack", "NetworkTranslator", "adversarial_params", "frozen", "l1_loss", "optimise"],
        "scale": ["to_network", "to_unit", "unit_images"],
    },
)
