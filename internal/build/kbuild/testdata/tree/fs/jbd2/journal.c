// Empty stand-in for fs/jbd2/journal.c of Linux 6.1.176.
