// Package importrules holds no code: its test keeps the tree's layers
// apart, so that the tree shows which program may link what.
//
// The layers, from the bottom:
//   - model: records and parsers (CVE records, kernels, build profiles,
//     kernel configs, kernel-log records, refusal codes); they only compute.
//   - analysis: judgements over models (applicability, priority, VEX).
//   - server: the server side (store, CVE sync, git mirror).
//   - build: the build side (Debian packages, kernel sources, trees, ELF,
//     the livepatch generator, the VM harness).
//   - agent: the host agent, its own small tower.
//   - service: the use cases the front ends share.
//   - frontend: the CLI (and the dashboard to come).
package importrules
