// Empty stand-in for net/ethernet/eth.c of Linux 6.1.176.
