// Package agent will be the fleet agent's logic: the program that runs on
// every host, fetches and verifies the signed archive, loads the right
// livepatch, watches the kernel log and reports to the server.
//
// It is a placeholder so that the import rules (internal/importrules) hold
// from the start: the agent stays small and links nothing of the server,
// the store, the generator or the front ends.
package agent
