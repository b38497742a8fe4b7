"""Evaluation metrics as the field computes them: L1, AKD, AED, LPIPS, PSNR, SSIM, with provenance."""
