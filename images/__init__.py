"""images: builders of disk and guest images (the QEMU test guest: images/guest.py)."""
