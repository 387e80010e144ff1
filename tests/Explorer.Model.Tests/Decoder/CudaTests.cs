using TorchSharp;
using static TorchSharp.torch;

namespace Explorer.Model.Tests;

/// <summary>A test that needs CUDA; skipped, saying why, on machines without it (this build's default is CPU
/// libtorch).</summary>
public sealed class CudaFactAttribute : FactAttribute
{
    public CudaFactAttribute()
    {
        if (!torch.cuda.is_available())
            Skip =
                "CUDA is not available (CPU libtorch build, or no GPU): build with -p:TorchBackend=cuda "
                + "on a GPU machine.";
    }
}

public class CudaTests
{
    [CudaFact]
    public void CudaLogitsMatchCpuLogits()
    {
        using var cpu = TestModels.Build(TestModels.Small);
        using var gpu = Decoder.Decoder.Create(
            TestModels.Small,
            new Decoder.DecoderOptions
            {
                Seed = 7,
                InitStd = 0.2,
                Device = CUDA,
            }
        );
        using var tokens = TestModels.Tokens(1, 2, 3, 4);
        Assert.True(torch.allclose(cpu.Logits(tokens), gpu.Logits(tokens).cpu(), rtol: 1e-4, atol: 1e-4));
    }

    [Fact]
    public void AskingForCudaWithoutItSaysWhatToDo()
    {
        if (torch.cuda.is_available())
            return;
        var e = Assert.Throws<ArgumentException>(() => TorchDevice.Resolve("cuda"));
        Assert.Contains("CUDA is not available", e.Message);
        Assert.Equal(DeviceType.CPU, TorchDevice.Resolve("auto").type);
        Assert.Contains(
            "Unknown device 'tpu'",
            Assert.Throws<ArgumentException>(() => TorchDevice.Resolve("tpu")).Message
        );
    }
}
