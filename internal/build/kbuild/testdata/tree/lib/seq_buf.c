// Empty stand-in for lib/seq_buf.c of Linux 6.1.176.
