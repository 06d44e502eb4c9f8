"""TCP's state names (RFC 9293 3.3.2), the groups of states the code tests, and the
per-connection limits shared by tcp_conn.py and tcp_timers.py. Constants only."""

CLOSED, LISTEN, SYN_SENT, SYN_RECEIVED = "CLOSED", "LISTEN", "SYN-SENT", "SYN-RECEIVED"
ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2 = "ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2"
CLOSE_WAIT, CLOSING, LAST_ACK, TIME_WAIT = "CLOSE-WAIT", "CLOSING", "LAST-ACK", "TIME-WAIT"
SYNCHRONIZED = (ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2, CLOSE_WAIT, CLOSING, LAST_ACK, TIME_WAIT)
CAN_RECEIVE = (ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2)
CAN_SEND = (ESTABLISHED, CLOSE_WAIT)

OUR_MSS = 1460  # 1500-byte MTU minus 40 bytes of IPv4 and TCP headers
DEFAULT_MSS = 536  # RFC 9293 3.7.1: what to assume when the peer sends no MSS option
MAX_RETRIES = 8  # retransmissions of one segment before the connection is aborted
SYN_RETRIES = 5
