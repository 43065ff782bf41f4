/* Empty stand-in for arch/x86/lib/getuser.S of Linux 6.1.176. */
