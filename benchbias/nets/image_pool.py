"""The history of generated images that CycleGAN shows its discriminators (Shrivastava et al. 2017)."""

from __future__ import annotations

import torch


class ImagePool:
    """A buffer of up to ``size`` previously generated images, as CycleGAN's ``ImagePool``.

    Images of a batch are taken in order. While the pool is filling, each image is stored and
    returned unchanged. Once it is full, each image is, with probability 1/2, stored in a random
    slot while the image that slot held is returned in its place; otherwise it is returned
    unchanged. A later image of a batch may thus receive one stored by an earlier image of the same
    batch, exactly as in the reference loop. ``size`` 0 returns every batch as it is.

    Randomness comes only from ``generator`` (a CPU :class:`torch.Generator`): the draws are made on
    the host, so a query never waits for the device, and the same seed gives the same history.
    """

    def __init__(self, size: int, generator: torch.Generator | None = None) -> None:
        if size < 0:
            raise ValueError(f"pool size must be >= 0, got {size}")
        self.size = size
        self.generator = generator if generator is not None else torch.default_generator
        self.count = 0
        self.images: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.count

    @torch.no_grad()
    def query(self, images: torch.Tensor) -> torch.Tensor:
        """The batch the discriminator should see in place of ``images`` (detached, same shape)."""
        images = images.detach()
        if self.size == 0:
            return images
        if self.images is None:
            self.images = images.new_empty((self.size, *images.shape[1:]))
        n = len(images)
        fill = min(n, self.size - self.count)
        if fill:
            self.images[self.count : self.count + fill] = images[:fill]
            self.count += fill
        if fill == n:
            return images

        swap = (torch.rand(n - fill, generator=self.generator) > 0.5).tolist()
        slots = torch.randint(self.size, (n - fill,), generator=self.generator).tolist()
        # Replay the reference loop on the host to find where each returned image comes from.
        stored_now: dict[int, int] = {}  # slot -> position of the image of this batch it now holds
        old_positions, old_slots, new_positions, new_sources = [], [], [], []
        for position, (swapped, slot) in enumerate(zip(swap, slots), start=fill):
            if not swapped:
                continue
            if slot in stored_now:
                new_positions.append(position)
                new_sources.append(stored_now[slot])
            else:
                old_positions.append(position)
                old_slots.append(slot)
            stored_now[slot] = position
        if not stored_now:
            return images

        def index(values: list[int]) -> torch.Tensor:
            return torch.tensor(values).to(images.device, non_blocking=True)

        out = images.clone()
        if old_positions:
            out[index(old_positions)] = self.images[index(old_slots)].to(out.dtype)
        if new_positions:
            out[index(new_positions)] = images[index(new_sources)]
        self.images[index(list(stored_now))] = images[index(list(stored_now.values()))].to(self.images.dtype)
        return out


class PoolStack:
    """One :class:`ImagePool` per model of a stack trained together: ``query`` takes and returns
    ``(models, N, C, H, W)``, model ``i``'s images going through pool ``i`` (with its own generator)."""

    def __init__(self, pools: list[ImagePool]) -> None:
        self.pools = pools

    def __len__(self) -> int:
        return len(self.pools[0])

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[0] != len(self.pools):
            raise ValueError(f"{len(self.pools)} pools take images with a leading model axis of {len(self.pools)}, got shape {tuple(images.shape)}")
        return torch.stack([pool.query(x) for pool, x in zip(self.pools, images)])
