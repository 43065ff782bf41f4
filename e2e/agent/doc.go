// Package agent holds the fleet agent's end-to-end tests: the real
// tuxtape-agent binary in a VM of Debian's 6.1 cloud kernel, loading real
// livepatch modules built by the generator, rolling a bad one back, and
// (with an archive built on the host) polling a signed archive over the
// network. It is test-only and may import anything; the agent itself may
// not (internal/importrules).
package agent
