/* Empty stand-in for arch/x86/lib/msr-reg.S of Linux 6.1.176. */
