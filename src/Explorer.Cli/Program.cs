using Explorer.Cli;

Explorer.Model.Hosting.ProcessMemory.Configure(); // malloc settings for libtorch's temporaries, before the first model
return ExplorerCommand.Run(args, Console.Out, Console.Error);
