"""The raw dataset format (nnU-Net v2 compatible, plus raters and groups), converters, demo data and verification."""
