"""capstan-proxy: iptables for cluster IPs and node ports on each node, and cluster DNS."""
