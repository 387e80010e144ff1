using Explorer.Model.Hosting;
using Explorer.Model.Weights;
using TorchSharp;
using static TorchSharp.torch;
using MemoryMarshal = System.Runtime.InteropServices.MemoryMarshal;

namespace Explorer.Model.Tests.Weights;

public sealed class WeightReadingTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("explorer-read-");

    public void Dispose() => _dir.Delete(recursive: true);

    [Theory]
    [InlineData("F32")]
    [InlineData("F16")]
    [InlineData("BF16")]
    public void NonFiniteValuesAreCountedAsABruteForceCountsThem(string dtype)
    {
        // Random bit patterns hit every exponent, NaN payloads and both infinities; lengths not a multiple of a vector.
        var random = new Random(5);
        foreach (var count in new[] { 0, 1, 7, 33, 1000, 4099 })
        {
            var size = dtype == "F32" ? 4 : 2;
            var bytes = new byte[count * size];
            random.NextBytes(bytes);
            long nan = 0,
                inf = 0;
            for (var i = 0; i < count; i++)
            {
                // Decoded independently: through .NET's own float types.
                var value = dtype switch
                {
                    "F32" => BitConverter.ToSingle(bytes, i * 4),
                    "F16" => (float)BitConverter.ToHalf(bytes, i * 2),
                    _ => BitConverter.Int32BitsToSingle(BitConverter.ToUInt16(bytes, i * 2) << 16),
                };
                if (float.IsNaN(value))
                    nan++;
                else if (float.IsInfinity(value))
                    inf++;
            }
            Assert.Equal(new NonFiniteCount(nan, inf), NonFiniteCount.In(bytes, dtype));
        }
    }

    [Fact]
    public void AFiniteRunWithOneNaNAtTheEndIsFound()
    {
        var values = Enumerable.Range(0, 1027).Select(i => (float)i).ToArray();
        values[^1] = float.NaN;
        Assert.Equal(new NonFiniteCount(1, 0), NonFiniteCount.In(MemoryMarshal.AsBytes(values.AsSpan()), "F32"));
        values[^1] = float.NegativeInfinity;
        values[0] = float.PositiveInfinity;
        Assert.Equal(new NonFiniteCount(0, 2), NonFiniteCount.In(MemoryMarshal.AsBytes(values.AsSpan()), "F32"));
    }

    [Theory]
    [InlineData(ScalarType.Float32, ScalarType.Float32)]
    [InlineData(ScalarType.BFloat16, ScalarType.Float32)]
    [InlineData(ScalarType.Float16, ScalarType.BFloat16)]
    public void ReadingInChunksSmallerThanATensorGivesTheWholeTensor(ScalarType fileType, ScalarType target)
    {
        using var source = torch.randn(37, 53, generator: new Generator(3, CPU)).to(fileType);
        using var other = torch.randn(11, generator: new Generator(4, CPU)).to(fileType);
        var path = Path.Combine(_dir.FullName, "t.safetensors");
        SafetensorsFile.Write(path, [("a", other), ("b", source)]);
        var file = SafetensorsFile.Open(path);
        using var destination = torch.empty(37, 53, target);
        using var stream = File.OpenRead(path);
        var reads = new List<long>();
        var found = file.ReadInto(file.Entries["b"], destination, stream, reads.Add, chunkBytes: 100);
        Assert.Equal(default, found);
        Assert.Equal(
            source.to(target).to(ScalarType.Float32).data<float>().ToArray(),
            destination.to(ScalarType.Float32).data<float>().ToArray()
        );
        var size = SafetensorsFile.ElementSizes[SafetensorsFile.FromScalarType(fileType)];
        // ⌈bytes / chunk⌉ reads
        Assert.Equal((37 * 53 * size + 100 / size * size - 1) / (100 / size * size), reads.Count);
        Assert.Equal(37L * 53 * size, reads.Sum());
    }

    [Fact]
    public void MappedAndReadLoadsAgreeAndAMappedModelOutlivesItsFiles()
    {
        using var decoder = TestModels.Build(TestModels.Small);
        var folder = Path.Combine(_dir.FullName, "ckpt");
        Checkpoint.Save(decoder, folder, maxShardBytes: 20_000);
        using var tokens = TestModels.Tokens(1, 4, 2, 8, 5, 7);
        using var read = Checkpoint.Load(folder, mapFiles: false);
        using var mapped = Checkpoint.Load(folder);
        var expected = TestModels.ToArray(decoder.Logits(tokens));
        Assert.Equal(expected, TestModels.ToArray(read.Logits(tokens)));
        Assert.Equal(expected, TestModels.ToArray(mapped.Logits(tokens)));
        // The mapping holds the files' pages: deleting the files (as a new download replaces a blob) changes nothing.
        foreach (var f in Directory.GetFiles(folder))
            File.Delete(f);
        Assert.Equal(expected, TestModels.ToArray(mapped.Logits(tokens)));
    }

    [Fact]
    public void AMappedModelTrainsWithoutWritingToItsFile()
    {
        using var decoder = TestModels.Build(TestModels.Small);
        var folder = Path.Combine(_dir.FullName, "cow");
        Checkpoint.Save(decoder, folder);
        var before = File.ReadAllBytes(Path.Combine(folder, Checkpoint.SingleFile));
        using (var mapped = Checkpoint.Load(folder))
        using (torch.no_grad())
            foreach (var p in mapped.parameters())
                p.add_(1.0f); // pages are copy-on-write
        Assert.Equal(before, File.ReadAllBytes(Path.Combine(folder, Checkpoint.SingleFile)));
    }

    [Fact]
    public void PeakResidentMemoryIsReadAndAtLeastTheCurrent()
    {
        var current = ProcessMemory.Resident();
        Assert.True(
            ProcessMemory.PeakResident() >= current * 0.99,
            $"peak {ProcessMemory.PeakResident()} < current {current}"
        );
    }
}
