using Explorer.Cli;

return ExplorerCommand.Run(args, Console.Out, Console.Error);
