// kforge's echo: the web server image kforge's tests run as a workload
// (kforge.dev/echo:v1). Its own module, so that it builds with nothing but
// the Go toolchain and stays out of the kforge module.
module kforge.dev/echo

go 1.24
