/* Empty stand-in for arch/x86/lib/checksum_32.S of Linux 6.1.176. */
