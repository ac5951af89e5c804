// kforge's pause: the process that holds a pod sandbox's namespaces. It is
// its own module so that it builds with nothing but the Go toolchain and
// stays out of the kforge module's build and dependency graph.
module kforge.dev/pause

go 1.24
