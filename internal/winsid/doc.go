// Package winsid tells which Windows account a process runs as: the agent
// compares it with its own on the named pipe (both ends) and on the proxy's
// loopback connections, as the Unix builds compare uids. Only Windows has
// it; elsewhere the package is empty.
package winsid
