namespace Explorer.Model;
public static class Probe { public static string Run() { var t = TorchSharp.torch.ones(3); return t.sum().item<float>().ToString(); } }
