"""The paper's impartial classifier: 4 stride-2 conv layers with ReLU, one linear layer, 2-way softmax.

Trained on real target-modality (T1) slices with balanced batches and cross-entropy. Training batches
are flipped and, by default, perturbed in intensity, contrast, sharpness and noise (MONAI's random
transforms), so that a global drift of a translation's brightness or blur is not read as a tumor.
Square or not: the network is built for the size of the images it is trained on.

Opt-in adversarial training (``adversarial_eps`` > 0) trains it on gradient attacks made with its own
weights, to resist them: in each batch a share of the slices (of each class alike) is replaced by PGD examples
(:func:`benchbias.api.with_adversarial_examples`, from a seeded random start) pushed toward the wrong call, the
attack a translator author holding the pinned weights would make. Off by default: the judge then
trains exactly as before.

The notebook's own CNN (``train_classifier.ipynb``) is ``channels: 64, growth: 0.5, padding: 0``
(64, 32, 16, 8 filters, no padding), ``lr: 0.001, weight_decay: 0.0``, no augmentation."""

import torch
import torch.nn.functional as F

from benchbias.api import Classifier, IntensityAugmentation, Param, hookimpl, impartial_cnn, with_adversarial_examples


def random_flips(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Flip each image left-right and/or up-down with probability 1/2 (tumor labels are unchanged)."""
    flips = torch.rand(2, len(images), generator=generator).to(images.device) < 0.5
    images = torch.where(flips[0, :, None, None, None], images.flip(-1), images)
    return torch.where(flips[1, :, None, None, None], images.flip(-2), images)


class ImpartialCNN(Classifier):
    name = "impartial-cnn"
    description = "4 stride-2 conv + ReLU, 1 linear layer, 2-way softmax (Cohen et al. 2018)"
    # Code identities (sha256 of earlier versions of this file) whose pinned judges this version loads
    # and scores unchanged: at the default params a square judge is built, trained and stored exactly as
    # before (retraining the synthetic-smoke, -mini and -quick judges gives their committed sha256), and
    # with adversarial training off (its default) exactly as the version before it was added; the last
    # one differs only in where the adversarial batch is made (now shared with timm-cnn).
    same_results_as = (
        "ace6e2e21796e0c7dabc0d7ce4063f3dd445afa0526f15ac04c3da614da981da",
        "1e79041c9fee036e28413064e577fac4a383ec06e050323800da4c681a071487",
        "00d8af28d4cc5f834d6175937c17e33d366658563e6403a63fc7e8403a175639",
    )
    params = {
        "channels": Param(32, "filters of the first conv layer; times `growth` at each of the 4 layers", minimum=1),
        "growth": Param(2.0, "filters of each conv layer relative to the one before (the notebook's CNN: 0.5)", minimum=0.1),
        "padding": Param(1, "zero padding of each 3x3 conv (the notebook's CNN: 0)", choices=(0, 1)),
        "batch_size": Param(32, "slices per step, half healthy and half tumor", minimum=2),
        "lr": Param(1e-3, "Adam learning rate", minimum=0.0),
        "weight_decay": Param(1e-4, "Adam weight decay", minimum=0.0),
        "augment": Param(True, "random left-right and up-down flips of training batches"),
        "intensity_augment": Param(True, "random intensity scale, gamma, Gaussian blur and noise on training batches"),
        "adversarial_eps": Param(0.0, "adversarial training: PGD examples move each pixel by at most this on [-1, 1] (0: off)", minimum=0.0, maximum=2.0),
        "adversarial_steps": Param(7, "adversarial training: PGD steps per batch", minimum=1),
        "adversarial_share": Param(0.5, "adversarial training: share of each class in a batch replaced by PGD examples", minimum=0.0, maximum=1.0),
    }

    def __init__(self, **params) -> None:
        super().__init__(**params)
        self.device = torch.device("cpu")
        self.network = None

    def _build(self, image_size: int | tuple[int, int]) -> None:
        """``image_size``: an int (square) or (rows, columns)."""
        c, growth = self.hparams["channels"], self.hparams["growth"]
        self._image_size = image_size
        channels = tuple(max(1, round(c * growth**i)) for i in range(4))
        self.network = impartial_cnn(image_size, channels=channels, padding=self.hparams["padding"]).to(self.device)

    def fit(self, images, labels, ctx) -> None:
        self.device = ctx.device
        rows, columns = images.shape[-2:]
        self._build(int(rows) if rows == columns else (int(rows), int(columns)))
        images, labels = images.to(self.device), labels.long().to(self.device)
        optimizer = torch.optim.Adam(self.network.parameters(), lr=self.hparams["lr"], weight_decay=self.hparams["weight_decay"])
        half = self.hparams["batch_size"] // 2
        by_class = [torch.nonzero(labels == c).flatten() for c in (0, 1)]
        draws = [ctx.batches(len(idx), min(half, len(idx))) for idx in by_class]
        perturb = IntensityAugmentation(seed=ctx.seed) if self.hparams["intensity_augment"] else None
        eps = self.hparams["adversarial_eps"]
        # Its own generator, so the batches and augmentations drawn are the same with and without it.
        attack_start = torch.Generator().manual_seed(ctx.seed) if eps > 0 else None
        self.network.train()
        for _ in ctx.loop():
            batch = torch.cat([idx[next(draw).to(idx.device)] for idx, draw in zip(by_class, draws)])
            x = images[batch]
            if self.hparams["augment"]:
                x = random_flips(x, ctx.generator)
            if perturb is not None:
                x = perturb(x)
            if attack_start is not None:
                x = self._with_adversarial_examples(x, labels[batch], attack_start)
            with ctx.autocast():
                loss = F.cross_entropy(self.network(x), labels[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            ctx.report({"ce": loss})

    def _with_adversarial_examples(self, x: torch.Tensor, labels: torch.Tensor, attack_start: torch.Generator) -> torch.Tensor:
        """``x`` with ``adversarial_share`` of each class replaced by PGD examples made toward the wrong call."""
        h = self.hparams
        return with_adversarial_examples(self.network, x, labels, h["adversarial_share"], h["adversarial_steps"], h["adversarial_eps"], attack_start)

    @torch.inference_mode()
    def predict_proba(self, images: torch.Tensor) -> torch.Tensor:
        self.network.eval()
        probabilities = [torch.softmax(self.network(chunk.to(self.device)).float(), dim=1)[:, 1].cpu() for chunk in images.split(256)]
        return torch.cat(probabilities)

    def state_dict(self) -> dict[str, torch.Tensor]:
        # A square's size is one number (as judges pinned before non-square slices); else (rows, columns).
        return {"image_size": torch.tensor(self._image_size), **self.network.state_dict()}

    def load_state_dict(self, state) -> None:
        state = dict(state)
        size = state.pop("image_size")
        self._build(int(size) if size.numel() == 1 else tuple(int(v) for v in size.tolist()))
        self.network.load_state_dict(state)


@hookimpl
def register_classifiers(register):
    register(ImpartialCNN)
