namespace Explorer.Model.Tests;
public class ProbeTests { [Fact] public void Loads() => Assert.Equal("3", Explorer.Model.Probe.Run()); }
