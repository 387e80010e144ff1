// The tests run the `explorer` command in this process, and a command owns libtorch's process-wide state (threads,
// the native allocator, scalars it hands to kernels) as it does when run alone: one command at a time, as users run it.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
