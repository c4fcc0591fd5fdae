"""A residual block (torchvision's BasicBlock shape: conv-bn-relu-conv-bn, plus a shortcut, then
ReLU) written as a conv3d Module against the same block in torch with the same weights: the
forward, the input gradient and every parameter gradient, and the state_dict keys. Skipped
without torch."""
import numpy as np
import pytest

import conv3d
from conv3d import nn
from conv3d.interop.torch_layout import load_torch_state_dict

torch = pytest.importorskip("torch")


class Block(nn.Module):
    def __init__(self, C, K, stride):
        super().__init__()
        self.conv1 = nn.Conv3d(C, K, 3, stride=stride, padding=1, bias=False, dtype=np.float64)
        self.bn1 = nn.BatchNorm3d(K, dtype=np.float64)
        self.relu = nn.ReLU(inplace=True)  # as torchvision writes it
        self.conv2 = nn.Conv3d(K, K, 3, padding=1, bias=False, dtype=np.float64)
        self.bn2 = nn.BatchNorm3d(K, dtype=np.float64)
        if stride != 1 or C != K:
            self.shortcut = nn.Sequential(nn.Conv3d(C, K, 1, stride=stride, bias=False,
                                                    dtype=np.float64),
                                          nn.BatchNorm3d(K, dtype=np.float64))
        else:
            self.shortcut = nn.Identity()

    def forward(self, x):
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(out + self.shortcut(x))


class TorchBlock(torch.nn.Module):
    def __init__(self, C, K, stride):
        super().__init__()
        tnn = torch.nn
        self.conv1 = tnn.Conv3d(C, K, 3, stride=stride, padding=1, bias=False)
        self.bn1 = tnn.BatchNorm3d(K)
        self.relu = tnn.ReLU(inplace=True)
        self.conv2 = tnn.Conv3d(K, K, 3, padding=1, bias=False)
        self.bn2 = tnn.BatchNorm3d(K)
        if stride != 1 or C != K:
            self.shortcut = tnn.Sequential(tnn.Conv3d(C, K, 1, stride=stride, bias=False),
                                           tnn.BatchNorm3d(K))
        else:
            self.shortcut = tnn.Identity()

    def forward(self, x):
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(out + self.shortcut(x))


@pytest.mark.parametrize("C, K, stride", [(3, 3, 1), (2, 4, 2)])
@pytest.mark.parametrize("training", [True, False])
def test_residual_block_matches_torch(C, K, stride, training):
    rng = np.random.default_rng(C * 10 + stride)
    theirs = TorchBlock(C, K, stride).double()
    with torch.no_grad():  # non-trivial BatchNorm state so that eval mode tests something
        for m in theirs.modules():
            if isinstance(m, torch.nn.BatchNorm3d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    ours = Block(C, K, stride)
    load_torch_state_dict(ours, theirs.state_dict())
    ours.train(training)
    theirs.train(training)
    x = rng.standard_normal((2, C, 4, 5, 5))
    a, t = conv3d.Tensor(x.copy(), requires_grad=True), torch.tensor(x, requires_grad=True)
    y, ty = ours(a), theirs(t)
    np.testing.assert_array_equal(a.numpy(), x)  # inplace=True never overwrites conv3d's input
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    gy = rng.standard_normal(y.shape)
    y.backward(gy)
    ty.backward(torch.from_numpy(gy))
    np.testing.assert_allclose(a.grad, t.grad.numpy(), rtol=1e-9, atol=1e-11)
    tparams = dict(theirs.named_parameters())
    ours_params = dict(ours.named_parameters())
    assert set(ours_params) == set(tparams)
    for name, p in ours_params.items():
        np.testing.assert_allclose(p.grad, tparams[name].grad.numpy(), rtol=1e-9, atol=1e-11,
                                   err_msg=name)
    # the running statistics moved (training) or stayed (eval) as torch's did
    tstate = theirs.state_dict()
    for name, value in ours.state_dict().items():
        np.testing.assert_allclose(value, tstate[name].numpy(), rtol=1e-12, atol=1e-14,
                                   err_msg=name)


def test_residual_block_state_dict_round_trip():
    block = Block(2, 4, 2)
    block.train()
    block(conv3d.Tensor(np.random.default_rng(0).standard_normal((2, 2, 4, 4, 4))))
    state = block.state_dict()
    assert "shortcut.0.weight" in state and "shortcut.1.running_mean" in state
    fresh = Block(2, 4, 2)
    fresh.load_state_dict(state)
    fresh.eval()
    block.eval()
    x = conv3d.Tensor(np.random.default_rng(1).standard_normal((1, 2, 4, 4, 4)))
    np.testing.assert_array_equal(fresh(x).numpy(), block(x).numpy())
    assert Block(3, 3, 1).state_dict().keys().isdisjoint({"shortcut.0.weight"})
