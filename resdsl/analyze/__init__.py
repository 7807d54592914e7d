"""Measurements of residual networks from the literature, on any spec: `resdsl analyze` and `resdsl sweep`.

paths.py       the unrolled view: paths per length on the graph (Veit et al. 2016)
gradients.py   gradient reaching the input through paths of each length (Veit Fig. 6)
lesion.py      deleting and reordering blocks of a trained net (Veit Figs. 3-5)
shattering.py  gradient autocorrelation along a line of inputs (Balduzzi et al. 2017)
norms.py       ||F(x)|| / ||x|| and cos(F(x), x) per block (Greff et al. 2017)
hessian.py     condition number of the loss Hessian at a start point (Li et al. 2016)
sweep.py       several settings trained with one recipe, compared (He et al. 2015, Fig. 6)
"""
