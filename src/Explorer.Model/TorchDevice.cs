using TorchSharp;

namespace Explorer.Model;

/// <summary>Chooses where tensors live: <c>auto</c> (CUDA when available), <c>cpu</c> or <c>cuda</c>.</summary>
public static class TorchDevice
{
    public static IReadOnlyList<string> Options { get; } = ["auto", "cpu", "cuda"];

    public static torch.Device Resolve(string option)
    {
        switch (option?.Trim().ToLowerInvariant())
        {
            case "auto":
                return torch.cuda.is_available() ? torch.CUDA : torch.CPU;
            case "cpu":
                return torch.CPU;
            case "cuda":
                if (!torch.cuda.is_available())
                    throw new ArgumentException(
                        "Device 'cuda' was asked for, but CUDA is not available: this build uses the CPU libtorch "
                            + "(rebuild with -p:TorchBackend=cuda on a machine with an NVIDIA GPU) or no "
                            + "GPU is visible. Use 'auto' or 'cpu'.",
                        nameof(option)
                    );
                return torch.CUDA;
            default:
                throw new ArgumentException(
                    $"Unknown device '{option}'. Use one of: {string.Join(", ", Options)}.",
                    nameof(option)
                );
        }
    }
}
