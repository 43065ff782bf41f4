// Empty stand-in for fs/jbd2/transaction.c of Linux 6.1.176.
