using Explorer.Cli;
using Explorer.Model.Pipeline;

// Before libtorch loads: its threads sleep, not spin, while they wait for each other.
OmpWaitPolicy.PreferPassive();
return ExplorerCommand.Run(args, Console.Out, Console.Error);
