"""x-prediction (ModelConfig.prediction = "x"): forward turns the network's clean-frame estimate
into the velocity (x_t - x̂0) / max(t, t_min), per frame from its shot's timestep."""
import torch

from train.model import MoCDiT, make_config


def test_x_prediction_is_the_v_network_output_turned_into_a_velocity():
    torch.manual_seed(0)
    cfg_v = make_config("tiny")
    cfg_x = make_config("tiny", prediction="x", t_min=0.05)
    mv, mx = MoCDiT(cfg_v), MoCDiT(cfg_x)
    for p in mv.parameters():  # non-zero final layer so the output is not 0
        torch.nn.init.normal_(p, std=0.1)
    mx.load_state_dict(mv.state_dict())
    frames = (2, 1)
    video = torch.randn(1, 3, 3, cfg_v.image_size, cfg_v.image_size)
    t_shot = torch.tensor([[0.01, 0.7]])  # shot 0 below t_min
    text = torch.randint(0, cfg_v.vocab_size, (1, 3, cfg_v.text_len))
    with torch.no_grad():
        y = mv(video, t_shot, text, frames=frames, mode="moc", top_k=1)
        v = mx(video, t_shot, text, frames=frames, mode="moc", top_k=1)
    t_frame = torch.tensor([0.05, 0.05, 0.7])[None, :, None, None, None]
    assert torch.allclose(v, (video - y) / t_frame, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(v, y)
