"""What an operator lives with: logging set-up and rate limiting (``logsetup``), the service
manager's readiness protocol (``notify``), the Prometheus text format (``exposition``) and
capture files (``pcap``).  Plain building blocks with no knowledge of the model; the daemon
and the CLI wire them in.
"""
