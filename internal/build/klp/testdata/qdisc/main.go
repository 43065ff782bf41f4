// Command qdisc puts a codel qdisc under a tbf root on a device, or
// removes the root, over rtnetlink: the VM's busybox tc cannot. tbf asks
// its child for the next packet through the child's ops->peek, which is
// what the sch_codel fix repoints.
//
//	qdisc add DEV | qdisc del DEV
package main

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) != 3 || (os.Args[1] != "add" && os.Args[1] != "del") {
		fmt.Fprintln(os.Stderr, "usage: qdisc add|del DEV")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "qdisc:", err)
		os.Exit(1)
	}
}

func run(op, dev string) error {
	ifi, err := net.InterfaceByName(dev)
	if err != nil {
		return err
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if op == "del" {
		return request(fd, unix.RTM_DELQDISC, 0, tcmsg(ifi.Index, 0, tcHRoot), nil)
	}
	// tbf 1: at 10 Mbit/s with a 32 KiB bucket (in ticks of 64 ns), no
	// default child; then codel 10: as its child in class 1:1.
	const rate, burst = 10_000_000 / 8, 32 << 10
	qopt := make([]byte, 36)
	qopt[1] = 1 // rate.linklayer: ethernet, so no rate table is needed
	binary.LittleEndian.PutUint32(qopt[8:], rate)
	binary.LittleEndian.PutUint32(qopt[28:], uint32(uint64(burst)*1e9/rate)>>6)
	opts := attr(unix.TCA_OPTIONS, attr(1 /* TCA_TBF_PARMS */, qopt))
	flags := unix.NLM_F_CREATE | unix.NLM_F_EXCL
	if err := request(fd, unix.RTM_NEWQDISC, flags, tcmsg(ifi.Index, 1<<16, tcHRoot), append(attr(unix.TCA_KIND, []byte("tbf\x00")), opts...)); err != nil {
		return fmt.Errorf("tbf: %w", err)
	}
	if err := request(fd, unix.RTM_NEWQDISC, flags, tcmsg(ifi.Index, 10<<16, 1<<16|1), attr(unix.TCA_KIND, []byte("codel\x00"))); err != nil {
		return fmt.Errorf("codel: %w", err)
	}
	return nil
}

const tcHRoot = 0xFFFFFFFF // TC_H_ROOT

func tcmsg(ifindex int, handle, parent uint32) []byte {
	b := make([]byte, 20)
	b[0] = unix.AF_UNSPEC
	binary.LittleEndian.PutUint32(b[4:], uint32(ifindex))
	binary.LittleEndian.PutUint32(b[8:], handle)
	binary.LittleEndian.PutUint32(b[12:], parent)
	return b
}

func attr(typ uint16, data []byte) []byte {
	n := 4 + len(data)
	b := make([]byte, (n+3)&^3)
	binary.LittleEndian.PutUint16(b, uint16(n))
	binary.LittleEndian.PutUint16(b[2:], typ)
	copy(b[4:], data)
	return b
}

// request sends one message and reads the kernel's acknowledgement.
func request(fd int, typ uint16, flags int, hdr, attrs []byte) error {
	body := append(hdr, attrs...)
	msg := make([]byte, 16+len(body))
	binary.LittleEndian.PutUint32(msg, uint32(len(msg)))
	binary.LittleEndian.PutUint16(msg[4:], typ)
	binary.LittleEndian.PutUint16(msg[6:], uint16(unix.NLM_F_REQUEST|unix.NLM_F_ACK|flags))
	binary.LittleEndian.PutUint32(msg[8:], 1)
	copy(msg[16:], body)
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	buf := make([]byte, 4096)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		return err
	}
	if n < 20 || binary.LittleEndian.Uint16(buf[4:]) != unix.NLMSG_ERROR {
		return fmt.Errorf("unexpected netlink reply (%d bytes)", n)
	}
	if errno := int32(binary.LittleEndian.Uint32(buf[16:])); errno != 0 {
		return unix.Errno(-errno)
	}
	return nil
}
