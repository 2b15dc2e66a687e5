"""YOLACT losses on hand-made cases: matching, box encoding, OHEM, mask and semantic losses, and a few
optimisation steps of the real road YOLACT that must lower the total."""

from __future__ import annotations

from dataclasses import replace

import pytest

torch = pytest.importorskip("torch", reason="the YOLACT losses need torch (the `train` extra)")

from pipeline.nets.yolact import Yolact, YolactTrainOutput, config_by_name  # noqa: E402
from pipeline.nets.yolact_loss import (  # noqa: E402
    GroundTruth,
    YolactLoss,
    YolactLossConfig,
    box_crop,
    decode,
    encode,
    hard_negatives,
    inside_boxes,
    match,
    match_atss,
    point_form,
)

# centre-size priors whose corner forms are easy to reason about
PRIORS = torch.tensor([
    [0.25, 0.25, 0.5, 0.5],  # 0: [0, 0, .5, .5]
    [0.75, 0.75, 0.5, 0.5],  # 1: [.5, .5, 1, 1]
    [0.5, 0.5, 1.0, 1.0],  # 2: the whole image
    [0.3, 0.3, 0.4, 0.4],  # 3: [.1, .1, .5, .5]
    [0.25, 0.1125, 0.5, 0.225],  # 4: [0, 0, .5, .225], IoU .45 with [0, 0, .5, .5]
])


def test_point_form():
    assert torch.allclose(point_form(PRIORS[:2]), torch.tensor([[0, 0, 0.5, 0.5], [0.5, 0.5, 1, 1]]))


def test_match_thresholds_and_forced_best_prior():
    boxes = torch.tensor([[0.0, 0.0, 0.5, 0.5],  # = prior 0; prior 3 IoU .64; prior 4 IoU .45
                          [0.55, 0.55, 0.95, 0.95],  # prior 1 IoU .64
                          [0.9, 0.0, 1.0, 0.1]])  # overlaps only prior 2 (IoU .01): forced onto it
    idx, state = match(boxes, PRIORS, 0.5, 0.4)
    assert state.tolist() == [1, 1, 1, 1, -1]  # prior 4 is neutral (0.4 <= IoU < 0.5)
    assert idx[:4].tolist() == [0, 1, 2, 0]


def test_match_two_boxes_sharing_a_best_prior_both_get_one():
    boxes = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.5, 0.48]])  # both fit prior 0 best
    idx, state = match(boxes, PRIORS, 0.5, 0.4)
    # prior 3 overlaps box 0 more (.64 vs .61), but box 1 claims it once box 0 has taken prior 0
    assert idx[0] == 0 and idx[3] == 1
    assert state[0] == 1 and state[3] == 1
    assert state[2] == 0  # whole-image prior: IoU .25 -> background


def test_match_without_boxes_is_all_background():
    idx, state = match(torch.zeros((0, 4)), PRIORS, 0.5, 0.4)
    assert state.tolist() == [0] * 5


def test_encode_decode_round_trip_and_known_value():
    g = torch.Generator().manual_seed(0)
    priors = torch.cat([torch.rand(50, 2, generator=g), 0.05 + 0.5 * torch.rand(50, 2, generator=g)], dim=1)
    xy = torch.rand(50, 2, generator=g) * 0.6
    boxes = torch.cat([xy, xy + 0.02 + 0.3 * torch.rand(50, 2, generator=g)], dim=1)
    assert torch.allclose(decode(encode(boxes, priors), priors), boxes, atol=1e-6)
    # a box twice the prior's size, centred half a prior width to the right: (0.5/0.1, 0, ln2/0.2, ln2/0.2)
    prior = torch.tensor([[0.5, 0.5, 0.2, 0.2]])
    box = torch.tensor([[0.4, 0.3, 0.8, 0.7]])
    expected = torch.tensor([[5.0, 0.0, 3.4657359, 3.4657359]])
    assert torch.allclose(encode(box, prior), expected, atol=1e-5)


def test_ohem_picks_the_hardest_background_priors():
    # 8 priors, background logit 0 and one class logit: background loss grows with the class logit
    class_logit = torch.tensor([5.0, 0.1, 3.0, 9.0, 2.0, 0.5, 4.0, 8.0])
    logits = torch.stack([torch.zeros(8), class_logit], dim=1)[None]
    conf_t = torch.tensor([[1, 0, 0, -1, 0, 0, 0, 0]])  # prior 0 positive, prior 3 neutral (hardest, excluded)
    neg = hard_negatives(logits, conf_t, ratio=3)
    assert torch.nonzero(neg[0]).flatten().tolist() == [2, 6, 7]  # the three largest among background priors


def test_ohem_no_positives_no_negatives():
    logits = torch.randn(1, 6, 4)
    assert not hard_negatives(logits, torch.zeros(1, 6, dtype=torch.long), ratio=3).any()


def test_inside_boxes_grows_thin_boxes_to_a_cell():
    priors = torch.tensor([[0.1, 0.1, 0.1, 0.1], [0.5, 0.5, 0.1, 0.1], [0.56, 0.5, 0.1, 0.1], [0.9, 0.9, 0.1, 0.1]])
    cells = torch.full((4, 2), 0.125)
    thin = torch.tensor([[0.49, 0.4, 0.51, 0.6]])  # 0.02 wide: only a one-cell (0.125) neighbourhood holds centres
    assert inside_boxes(thin, priors, cells).tolist() == [False, True, True, False]
    assert inside_boxes(torch.tensor([[0.0, 0.0, 0.2, 0.2]]), priors, cells).tolist() == [True, False, False, False]
    assert not inside_boxes(torch.zeros(0, 4), priors, cells).any()


def test_background_priors_in_ignore_regions_are_never_negatives():
    target = _square_target()  # positives: priors 0 and 3
    conf = torch.zeros(1, 5, 4)
    conf[0, :, 2] = torch.tensor([0.0, 9.0, 8.0, 0.0, 1.0])  # priors 1 and 2 look most like objects
    out = replace(_output(torch.zeros(16, 16, 2), torch.zeros(2), conf=conf), prior_cells=torch.full((5, 2), 0.1))
    loss = YolactLoss(YolactLossConfig(negpos_ratio=1))
    plain = loss(out, [target])["class"]
    # a don't-care box around prior 1's centre (0.75, 0.75): prior 2 is the only background prior left (prior
    # 4 is neutral by IoU), so the one negative
    ignored = loss(out, [replace(target, ignore=torch.tensor([[0.7, 0.7, 0.8, 0.8]]))])["class"]
    nll = lambda logit: torch.logsumexp(torch.tensor([0.0, 0.0, logit, 0.0]), 0).item()  # -log p(background)
    positive = torch.logsumexp(torch.zeros(4), 0).item()  # class 1 at logit 0 among four zeros
    assert plain.item() == pytest.approx((2 * positive + nll(9.0) + nll(8.0)) / 2, rel=1e-5)
    assert ignored.item() == pytest.approx((2 * positive + nll(8.0)) / 2, rel=1e-5)
    # a box over the positive priors 0 and 3 (and the neutral 4) leaves them as they were
    kept = loss(out, [replace(target, ignore=torch.tensor([[0.1, 0.1, 0.4, 0.4]]))])["class"]
    assert kept.item() == pytest.approx(plain.item(), rel=1e-6)


def test_box_crop_pads_one_pixel():
    crop = box_crop(torch.tensor([[0.25, 0.5, 0.5, 0.75]]), 8, 8)[0]
    assert crop.sum() == 4 * 4  # columns 1..4, rows 3..6
    assert crop[3:7, 1:5].all()


def _output(proto, coeffs, num_classes=3, segm=None, conf=None, loc=None):
    """A YolactTrainOutput built from chosen tensors (batch 1, priors = PRIORS)."""
    p = PRIORS.shape[0]
    return YolactTrainOutput(
        loc=torch.zeros(1, p, 4) if loc is None else loc,
        conf_logits=torch.zeros(1, p, num_classes + 1) if conf is None else conf,
        mask=coeffs[None].expand(1, p, coeffs.shape[0]).contiguous(),
        proto=proto[None],
        segm=torch.zeros(1, num_classes, 8, 8) if segm is None else segm,
        priors=PRIORS)


def _square_target(size=32):
    """One object: the quarter square [0, .5) x [0, .5) of a size x size input, class 1 (Pedestrian)."""
    masks = torch.zeros(1, size, size)
    masks[0, : size // 2, : size // 2] = 1
    return GroundTruth(boxes=torch.tensor([[0.0, 0.0, 0.5, 0.5]]), classes=torch.tensor([1]), masks=masks)


def test_mask_loss_perfect_prediction_is_near_zero_and_wrong_one_is_not():
    target = _square_target()
    gt16 = torch.zeros(16, 16)
    gt16[:8, :8] = 1
    # two prototypes: the object and its complement; coefficients (1, -1) give logits of +-20
    proto = torch.stack([20 * gt16, 20 * (1 - gt16)], dim=-1)
    loss = YolactLoss()
    good = loss(_output(proto, torch.tensor([1.0, -1.0])), [target])["mask"]
    bad = loss(_output(proto, torch.tensor([-1.0, 1.0])), [target])["mask"]
    assert good.item() < 1e-6
    # wrong everywhere inside the padded box: 20 nats per pixel, 9x9 pixels / 64 box pixels x 6.125,
    # for each of the two positive priors (0 and 3), divided by the two positives
    assert bad.item() == pytest.approx(20 * 81 / 64 * 6.125, rel=1e-3)


def test_semantic_loss_perfect_and_wrong():
    target = _square_target()
    truth = torch.zeros(3, 8, 8)
    truth[1, :4, :4] = 1
    proto = torch.zeros(16, 16, 2)
    loss = YolactLoss()
    good = loss(_output(proto, torch.zeros(2), segm=(40 * truth - 20)[None]), [target])["semantic"]
    bad = loss(_output(proto, torch.zeros(2), segm=(20 - 40 * truth)[None]), [target])["semantic"]
    assert good.item() < 1e-6
    assert bad.item() == pytest.approx(20 * 3, rel=1e-3)  # 20 nats at every pixel of 3 classes, / 64 pixels x 64


def test_box_and_class_losses_vanish_for_the_right_answer():
    target = _square_target()
    idx, state = match(target.boxes, PRIORS, 0.5, 0.4)
    loc = encode(target.boxes[idx], PRIORS)[None]
    conf = torch.full((1, 5, 4), -20.0)
    conf[0, :, 0] = 20.0  # background everywhere...
    conf[0, state > 0, 0] = -20.0
    conf[0, state > 0, 2] = 20.0  # ...except the positives, class 1 -> column 2
    losses = YolactLoss()(_output(torch.zeros(16, 16, 2), torch.zeros(2), conf=conf, loc=loc), [target])
    assert losses["box"].item() < 1e-9
    assert losses["class"].item() < 1e-6
    worse = YolactLoss()(_output(torch.zeros(16, 16, 2), torch.zeros(2), conf=conf, loc=loc + 0.5), [target])
    assert worse["box"].item() == pytest.approx(4 * 0.125 * 1.5, rel=1e-5)  # smooth L1 of 0.5 = 0.125 per offset


def test_masks_to_train_rescales_to_all_positives():
    target = _square_target()
    gt16 = torch.zeros(16, 16)
    gt16[:8, :8] = 1
    proto = torch.stack([20 * gt16, 20 * (1 - gt16)], dim=-1)
    out = _output(proto, torch.tensor([-1.0, 1.0]))
    full = YolactLoss()(out, [target])["mask"]
    sampled = YolactLoss(YolactLossConfig(masks_to_train=1))(out, [target])["mask"]
    assert sampled.item() == pytest.approx(full.item(), rel=1e-4)  # both positives carry the same loss


def _road_net(size: int = 128) -> Yolact:
    return Yolact(replace(config_by_name("edgeseg_yolact_road"), input_size=(size, size),
                          anchor_norm=(float(size), float(size)), anchor_scales=(8.0, 16.0, 32.0, 64.0, 128.0)))


def test_atss_gives_a_thin_box_several_nearby_positives_and_keeps_iou_ones():
    net = _road_net()
    # a distant pedestrian, 3 x 20 px at 128x128 (IoU rule: only its forced prior), and a car that fits anchors
    boxes = torch.tensor([[40.0, 50.0, 43.0, 70.0], [70.0, 70.0, 86.0, 86.0]]) / 128
    idx_iou, state_iou = match(boxes, net.priors, 0.5, 0.4)
    idx, state = match_atss(boxes, net.priors, net.prior_levels, net.prior_cells, 9, 0.5, 0.4)
    thin_iou = ((state_iou == 1) & (idx_iou == 0)).sum().item()
    thin = (state == 1) & (idx == 0)
    assert thin_iou == 1 and thin.sum().item() >= 3
    # every IoU-rule positive stays positive, matched to the same box
    kept = state_iou == 1
    assert (state[kept] == 1).all() and (idx[kept] == idx_iou[kept]).all()
    # the new positives sit on or next to the box: centre within the box grown to one cell of their level
    centre = (boxes[0, :2] + boxes[0, 2:]) / 2
    half = torch.maximum((boxes[0, 2:] - boxes[0, :2]) / 2, net.prior_cells[thin] / 2)
    assert ((net.priors[thin, :2] - centre).abs() <= half + 1e-6).all()


def test_atss_without_boxes_is_all_background():
    net = _road_net()
    _, state = match_atss(torch.zeros((0, 4)), net.priors, net.prior_levels, net.prior_cells, 9, 0.5, 0.4)
    assert (state == 0).all()


def test_soft_mask_targets_keep_an_object_thinner_than_a_prototype_pixel():
    """A 1-pixel-wide object on a 32x32 input, 16x16 prototypes: binarised bilinear targets erase it (so
    a prediction of nothing costs nothing), area targets keep half a pixel of it (so it costs)."""
    masks = torch.zeros(1, 32, 32)
    masks[0, 0:16, 4] = 1
    target = GroundTruth(boxes=torch.tensor([[4 / 32, 0.0, 5 / 32, 0.5]]), classes=torch.tensor([1]), masks=masks)
    proto = torch.full((16, 16, 2), -20.0)  # predicts background everywhere
    out = _output(proto, torch.tensor([1.0, 0.0]))
    hard = YolactLoss()(out, [target])["mask"]
    soft = YolactLoss(YolactLossConfig(soft_masks=True))(out, [target])["mask"]
    assert hard.item() < 1e-6 < 1.0 < soft.item()


@pytest.mark.parametrize("assign", ["iou", "atss"])
def test_real_yolact_learns_one_image(assign):
    """A few Adam steps of the road YOLACT (at a small input) on one image with two objects lower every loss
    term's total: the matching, targets and gradients fit together."""
    torch.manual_seed(0)
    model = _road_net().train()
    masks = torch.zeros(2, 128, 128)
    masks[0, 60:100, 10:70] = 1
    masks[1, 30:90, 90:110] = 1
    target = GroundTruth(boxes=torch.tensor([[10, 60, 70, 100], [90, 30, 110, 90]]) / 128.0,
                         classes=torch.tensor([0, 1]), masks=masks)
    x = torch.randn(1, 3, 128, 128)
    loss = YolactLoss(YolactLossConfig(assign=assign, soft_masks=assign == "atss"))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    totals = []
    for _ in range(8):
        losses = loss(model(x), [target])
        assert all(torch.isfinite(v) for v in losses.values())
        opt.zero_grad()
        losses["total"].backward()
        opt.step()
        totals.append(losses["total"].item())
    assert totals[-1] < 0.5 * totals[0]
