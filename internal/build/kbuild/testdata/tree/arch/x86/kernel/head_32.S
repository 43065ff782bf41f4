/* Empty stand-in for arch/x86/kernel/head_32.S of Linux 6.1.176. */
