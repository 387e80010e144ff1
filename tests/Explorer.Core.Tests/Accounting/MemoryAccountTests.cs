using Explorer.Core.Accounting;
using Explorer.Core.Specs;

namespace Explorer.Core.Tests;

public class MemoryAccountTests
{
    [Fact]
    public void KvCachePerTokenOf67BIsSmallerThan7BBecauseOfGqa()
    {
        // 2 (K, V) · layers · kv_heads · head_dim · 2 bytes.
        long kv7 = 2L * 30 * 32 * 128 * 2; // 491,520
        long kv67 = 2L * 95 * 8 * 128 * 2; // 389,120
        Assert.Equal(kv7, MemoryAccount.KvCacheBytesPerToken(ModelPresets.DeepSeekLlm7B, DataType.BFloat16));
        Assert.Equal(kv67, MemoryAccount.KvCacheBytesPerToken(ModelPresets.DeepSeekLlm67B, DataType.BFloat16));
        Assert.True(kv67 < kv7);
        Assert.Equal(2 * kv7, MemoryAccount.KvCacheBytesPerToken(ModelPresets.DeepSeekLlm7B, DataType.Float32));
    }

    [Fact]
    public void KvCacheForASequenceScalesWithTokens() =>
        Assert.Equal(
            4096L * 8 * 491_520,
            MemoryAccount.KvCacheBytes(ModelPresets.DeepSeekLlm7B, 4096L * 8, DataType.BFloat16)
        );

    [Fact]
    public void WeightBytesByDtype()
    {
        const long total = 67_425_001_472L;
        var spec = ModelPresets.DeepSeekLlm67B;
        Assert.Equal(4 * total, MemoryAccount.WeightBytes(spec, DataType.Float32));
        Assert.Equal(2 * total, MemoryAccount.WeightBytes(spec, DataType.BFloat16));
        Assert.Equal(total, MemoryAccount.WeightBytes(spec, DataType.Int8));
        Assert.Equal(total / 2, MemoryAccount.WeightBytes(spec, DataType.Int4));
        Assert.Equal(16 * total, MemoryAccount.TrainingStateBytes(spec));
    }

    [Fact]
    public void Int4RoundsUpToWholeBytes() => Assert.Equal(2, DataType.Int4.BytesFor(3));

    [Fact]
    public void ActivationsFollowKorthikanti()
    {
        // 7B at s = 4096, b = 1: s·b·h·(34 + 5·a·s/h) = 4096·4096·(34 + 5·32·4096/4096) = 16,777,216 · 194.
        var spec = ModelPresets.DeepSeekLlm7B;
        Assert.Equal(16_777_216L * 194, MemoryAccount.ActivationBytesPerLayer(spec, 4096, 1, Recomputation.None));
        Assert.Equal(16_777_216L * 34, MemoryAccount.ActivationBytesPerLayer(spec, 4096, 1, Recomputation.Selective));
        Assert.Equal(16_777_216L * 2, MemoryAccount.ActivationBytesPerLayer(spec, 4096, 1, Recomputation.Full));
        // 67B, s = 2048, b = 4: 2048·4·8192·(34 + 5·64·2048/8192) = 67,108,864 · 114.
        Assert.Equal(
            67_108_864L * 114,
            MemoryAccount.ActivationBytesPerLayer(ModelPresets.DeepSeekLlm67B, 2048, 4, Recomputation.None)
        );
    }

    [Theory]
    [InlineData(0, 1)]
    [InlineData(128, 0)]
    public void BadActivationInputsAreRefused(int s, int b) =>
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            MemoryAccount.ActivationBytesPerLayer(ModelPresets.DeepSeekLlm7B, s, b, Recomputation.None)
        );

    [Fact]
    public void UnknownDtypeNamesTheKnownOnes()
    {
        var e = Assert.Throws<ArgumentException>(() => DataType.Parse("fp12"));
        Assert.Contains("fp12", e.Message);
        Assert.Contains("bf16", e.Message);
    }
}
