"""DiffRecon: a two-stage conditional diffusion imputer in the spirit of Sun et al.,
"DiffRecon" (arXiv 2410.05323). No code was published; this is our reading of the abstract.

Stage one (*Diffusion-C*) completes the coarse field ``sm_36km``: every distinct coarse series
(the fine cells of one coarse cell share one; the built-in TxSON scenario is one 36 km cell, so
one series, about half of its days missing plus a five-week outage) is completed by a 1-D
conditional diffusion conditioned on its observed days (point tokens: the previous and next
observation), the covariates averaged over the coarse cell and the season. It draws
``n_samples`` completed series. Stage two (*Diffusion-F*) samples the 1 km field: fine sample
``k`` is conditioned on coarse sample ``k`` (so stage one's uncertainty reaches the output), the
covariates, the season and the sparse 1 km observations, through a point encoder (ST-PointFormer
reading) and a temporal encoder (T-PatternNet reading). Both denoisers are trained as CSDI does:
a share of the observed entries (whole days or single entries) is hidden as the target, the
rest conditions, and the loss is an MSE at the hidden entries. Sampling is
DDIM (eta = 0) over CSDI's 50-step quadratic schedule. The median of the samples is the
imputation; their quantiles, conformalised on validation entries kept out of training (CQR per
gap class, :mod:`.calibration`), the distribution.

Modules: :mod:`.data` (inputs, tokens, units), :mod:`.core` (networks, schedule, sampler),
:mod:`.training` (both training loops and samplers), :mod:`.calibration`, :mod:`.model` (the
imputer), :mod:`.checkpoint` (save / load).

Departures from the paper's text, and why:

- Stage two also takes the sparse 1 km observations and the 1 km covariates (the abstract's
  stage two takes the coarse field only): the task here is gap filling of a sparse 1 km product.
- Stage one is 1-D (a series per coarse cell) with temporal convolutions and no spatial
  attention: on the built-in scenario the coarse field is one cell, so a spatial encoder at
  36 km would have nothing to attend to; on a region of several coarse cells the series are
  completed independently (shared weights), not jointly in space.
- The stages are trained one after the other (stage two on stage one's samples), not end to
  end: a CPU budget of minutes, and stage one reads no fine value, so no fine validation entry
  reaches it. Stage one has a fixed number of steps and no early stopping.
- ST-PointFormer is read as attention pooling over a fixed set of point tokens per entry (the
  cell's previous and next observation with their distances in days, same-day neighbourhood
  means at 3 x 3 and 7 x 7 cells, the day's grid mean, the cell's mean over the surrounding
  two months), not a k-nearest-neighbour search in space-time: vectorised, computed once per
  window and reused at every diffusion step.
- T-PatternNet is read as dilated temporal convolutions per cell over the covariates, the
  completed coarse series and day-of-year harmonics (the "period features"); no FFT.
- The denoiser is CSDI's residual layer with the feature transformer replaced by a gated
  depthwise-separable 3 x 3 spatial convolution (dilation 1, 2): cheaper on a 36 x 36 grid.
- Stage two models the anomaly from the completed coarse median, not the raw value, and both
  denoisers predict the clean target x0, not CSDI's noise: with minutes of CPU training an
  eps-model gave a median MAE of 0.099 m³/m³ and 90 % sample intervals 0.52 m³/m³ wide on
  the built-in year (its x0 estimate amplifies errors by 1/sqrt(alpha_bar) at high noise).
- Temporal mixing in the denoiser is a depthwise dilated convolution (5 taps), not attention:
  attention over the window per cell took most of the sampling time on a CPU; the point
  tokens and the temporal encoder carry the longer range.
- Windows of ``window`` days over the whole grid are sampled one after the other (no overlap;
  the point tokens see observations 30 days beyond the window).
- The intervals are calibrated (split-conformal CQR per gap class) on validation entries; the
  paper reports no calibration. ``calibrated=False`` gives the raw sample quantiles.
- Few steps and small widths (profiles) so a year trains in minutes on two CPU cores; with
  ``max_minutes`` set, where training stops depends on the machine's speed (the same seed then
  repeats exactly only on the same machine and load).
"""
