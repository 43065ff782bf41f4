// Package fleet holds TuxTape's whole-pipeline test: real processes from
// the CVE data to a livepatched kernel in a VM. The tuxtape server (TLS,
// tokens, the two-person rule), a builder, the patch workflow, the signed
// archive and the fleet agent in a VM of Debian's 6.1 cloud kernel, which
// reports to the real server. Package guestvm boots that VM, for the test
// and for make demo (cmd/demovm).
package fleet
