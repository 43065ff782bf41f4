/* Empty stand-in for arch/x86/lib/hweight.S of Linux 6.1.176. */
