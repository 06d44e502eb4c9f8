"""Intel 82599 registers, bits and descriptor fields the ixgbe driver uses (and no others).

Purpose: constants shared by the driver's files; no state. Sections cite the Intel
82599 10 GbE Controller Datasheet, revision 3.3 (March 2016): register layouts in §8.2.3,
the initialization sequence in §4.6, descriptor formats in §7.1.6 (receive) and
§7.2.3.2.4 (transmit). Per-queue registers are functions of the queue index
(queues 0..63; the driver uses no more). `IxgbeError` is what the driver raises when
the device does not behave (a bit that never sets, a frame without EOP): a panic.
"""

# -- general control and status (§8.2.3.1) --------------------------------------------------
CTRL = 0x00000  # §8.2.3.1.1 Device Control
CTRL_LNK_RST = 1 << 3  # link reset
CTRL_RST = 1 << 26  # device (software) reset; both self-clear when done
CTRL_RST_MASK = CTRL_LNK_RST | CTRL_RST
STATUS = 0x00008  # §8.2.3.1.2
CTRL_EXT = 0x00018  # §8.2.3.1.3 Extended Device Control
CTRL_EXT_NS_DIS = 1 << 16  # no-snoop disable

# -- interrupts (§8.2.3.5): masked, the driver polls --------------------------------------
EICR = 0x00800  # §8.2.3.5.1 Extended Interrupt Cause (clear on read)
EIMS = 0x00880  # §8.2.3.5.3 Extended Interrupt Mask Set
EIMC = 0x00888  # §8.2.3.5.4 Extended Interrupt Mask Clear
EIMC_ALL = 0x7FFF_FFFF

# -- EEPROM and DMA init status --------------------------------------------------------
EEC = 0x10010  # §8.2.3.2.1 EEPROM/Flash Control
EEC_ARD = 1 << 9  # EEPROM auto-read done
RDRXCTL = 0x02F00  # §8.2.3.8.8 Receive DMA Control
RDRXCTL_CRCSTRIP = 1 << 1
RDRXCTL_DMAIDONE = 1 << 3  # DMA initialization done

# -- link (§8.2.3.22) ------------------------------------------------------------------------
AUTOC = 0x042A0  # §8.2.3.22.9 Auto-Negotiation Control
AUTOC_LMS_MASK = 0x7 << 13  # link mode select
AUTOC_LMS_10G_SERIAL = 0x3 << 13
AUTOC_10G_PMA_PMD_MASK = 0x3 << 7
AUTOC_10G_XAUI = 0x0 << 7
AUTOC_AN_RESTART = 1 << 12
LINKS = 0x042A4  # §8.2.3.22.11 Link Status
LINKS_UP = 1 << 30
LINKS_SPEED_MASK = 0x3 << 28
LINK_SPEEDS_MBPS = {0x3 << 28: 10_000, 0x2 << 28: 1_000, 0x1 << 28: 100}
HLREG0 = 0x04240  # §8.2.3.22.8 MAC Core Control 0
HLREG0_TXCRCEN = 1 << 0
HLREG0_RXCRCSTRP = 1 << 1
HLREG0_TXPADEN = 1 << 10

# -- receive (§8.2.3.7, §8.2.3.8) ------------------------------------------------------------
RXCTRL = 0x03000  # §8.2.3.8.10 Receive Control
RXCTRL_RXEN = 1 << 0
FCTRL = 0x05080  # §8.2.3.7.1 Filter Control
FCTRL_MPE = 1 << 8  # multicast promiscuous
FCTRL_UPE = 1 << 9  # unicast promiscuous
FCTRL_BAM = 1 << 10  # accept broadcast
RAL0, RAH0 = 0x05400, 0x05404  # §8.2.3.7.8-9 Receive Address Low/High, entry 0
SRRCTL_DESCTYPE_ADV_ONEBUF = 0x1 << 25  # §8.2.3.8.7: advanced descriptors, one buffer
SRRCTL_DROP_EN = 1 << 28  # drop instead of stalling when no descriptor is free
SRRCTL_BSIZEPACKET_MASK = 0x1F  # packet buffer size in 1 KiB units
RXDCTL_ENABLE = 1 << 25  # §8.2.3.8.6


def RXPBSIZE(i: int) -> int:
    return 0x03C00 + 4 * i  # §8.2.3.8.9 Receive Packet Buffer Size


def SRRCTL(i: int) -> int:
    return 0x02100 + 4 * i  # §8.2.3.8.7 Split Receive Control


def DCA_RXCTRL(i: int) -> int:
    return 0x02200 + 4 * i  # §8.2.3.11.1; bit 12 must be cleared (ixgbe erratum)


def RDBAL(i: int) -> int:
    return 0x01000 + 0x40 * i  # §8.2.3.8.1 Receive Descriptor Base Address Low


def RDBAH(i: int) -> int:
    return 0x01004 + 0x40 * i  # §8.2.3.8.2


def RDLEN(i: int) -> int:
    return 0x01008 + 0x40 * i  # §8.2.3.8.3 ring length in bytes


def RDH(i: int) -> int:
    return 0x01010 + 0x40 * i  # §8.2.3.8.4 head: the next descriptor the NIC fills


def RDT(i: int) -> int:
    return 0x01018 + 0x40 * i  # §8.2.3.8.5 tail: one past the last descriptor given to the NIC


def RXDCTL(i: int) -> int:
    return 0x01028 + 0x40 * i  # §8.2.3.8.6 Receive Descriptor Control


# -- transmit (§8.2.3.9, §8.2.3.10) -----------------------------------------------------------
DTXMXSZRQ = 0x08100  # §8.2.3.9.15 DMA Tx TCP Max Allow Size Requests
RTTDCS = 0x04900  # §8.2.3.10.2 DCB Transmit Descriptor Plane Control and Status
RTTDCS_ARBDIS = 1 << 6
DMATXCTL = 0x04A80  # §8.2.3.9.2 DMA Tx Control
DMATXCTL_TE = 1 << 0
TXDCTL_ENABLE = 1 << 25  # §8.2.3.9.10


def TXPBSIZE(i: int) -> int:
    return 0x0CC00 + 4 * i  # §8.2.3.9.13 Transmit Packet Buffer Size


def TDBAL(i: int) -> int:
    return 0x06000 + 0x40 * i  # §8.2.3.9.5


def TDBAH(i: int) -> int:
    return 0x06004 + 0x40 * i  # §8.2.3.9.6


def TDLEN(i: int) -> int:
    return 0x06008 + 0x40 * i  # §8.2.3.9.7


def TDH(i: int) -> int:
    return 0x06010 + 0x40 * i  # §8.2.3.9.8 head: the next descriptor the NIC sends


def TDT(i: int) -> int:
    return 0x06018 + 0x40 * i  # §8.2.3.9.9 tail: one past the last descriptor to send


def TXDCTL(i: int) -> int:
    return 0x06028 + 0x40 * i  # §8.2.3.9.10 Transmit Descriptor Control


TXDCTL_PTHRESH, TXDCTL_HTHRESH, TXDCTL_WTHRESH = 36, 8 << 8, 4 << 16  # prefetch/host/writeback

# -- statistics (§8.2.3.23), all clear on read ------------------------------------------------
CRCERRS = 0x04000  # §8.2.3.23.1 CRC errors
GPRC = 0x04074  # §8.2.3.23.18 good packets received
GPTC = 0x04080  # §8.2.3.23.22 good packets transmitted
GORCL, GORCH = 0x04088, 0x0408C  # §8.2.3.23.23-24 good octets received (36 bits)
GOTCL, GOTCH = 0x04090, 0x04094  # §8.2.3.23.25-26 good octets transmitted


def MPC(i: int) -> int:
    return 0x03FA0 + 4 * i  # §8.2.3.23.4 missed packets (no free descriptor), per buffer


# -- descriptors (16 bytes, little-endian) ------------------------------------------------------
DESC_BYTES = 16
# §7.1.6.1 advanced RX, read format: u64 packet address, u64 header address (0 clears DD).
# §7.1.6.2 writeback: dword 2 = extended status/error, u16 at bytes 12-13 = packet length.
RX_STATUS_DWORD, RX_LENGTH_WORD = 2, 6  # index in a uint32 / uint16 view of one descriptor
RX_STAT_DD, RX_STAT_EOP = 1 << 0, 1 << 1
# §7.2.3.2.4 advanced TX data descriptor: u64 buffer address; dword 2 = DTALEN | DTYP | DCMD;
# dword 3 = PAYLEN << 14. §7.2.3.2.4 writeback: dword 3 bit 0 = DD (when RS was set).
TX_DTYP_DATA = 0x3 << 20
TX_DCMD_EOP = 1 << 24  # end of packet
TX_DCMD_IFCS = 1 << 25  # insert FCS
TX_DCMD_RS = 1 << 27  # report status (write back DD)
TX_DCMD_DEXT = 1 << 29  # advanced descriptor
TX_CMD_ONE_BUFFER = TX_DTYP_DATA | TX_DCMD_EOP | TX_DCMD_IFCS | TX_DCMD_RS | TX_DCMD_DEXT
TX_PAYLEN_SHIFT = 14
TX_STATUS_DWORD = 3
TX_STAT_DD = 1 << 0


class IxgbeError(Exception):
    """The NIC did not behave as the datasheet says (a panic of the driver)."""
