"""Intel 82599 register offsets, bits and descriptor fields: the Python single source.

Purpose: the register map of the 82599 as the `sim` model (csrc/ixgbe_model.h) and a
driver see it, importable without C. Offsets and bits are from the Intel 82599 10 GbE
Controller Datasheet, Rev. 3.3 (§8.2.3 register descriptions; §7.1.6 and §7.2.3.2.4
descriptor formats; §8.2.3.23 statistics, all clear on read), collected in
../shared/notes/devices.md. Per-queue registers are functions of the queue index
(queues 0..15 here; the model has at most 16). Only registers the model or a driver
uses are declared. The C header defines the same values; tests compare the two.

Interface: plain `int` constants and small pure functions. No state, no locking.
"""

from __future__ import annotations

# -- general control and interrupts (§4.6.3, §8.2.3) ---------------------------------
CTRL = 0x00000
CTRL_LNK_RST = 0x00000008
CTRL_RST = 0x04000000
CTRL_RST_MASK = CTRL_LNK_RST | CTRL_RST
STATUS = 0x00008
CTRL_EXT = 0x00018
CTRL_EXT_NS_DIS = 0x00010000
EICR = 0x00800
EIMS = 0x00880
EIMC = 0x00888
EIMC_ALL = 0x7FFFFFFF
EEC = 0x10010
EEC_PRES = 0x00000100
EEC_ARD = 0x00000200

# -- link (§4.6.4, §8.2.3) ------------------------------------------------------------
AUTOC = 0x042A0
AUTOC_LMS_SHIFT = 13
AUTOC_LMS_MASK = 0x7 << 13
AUTOC_LMS_10G_SERIAL = 0x3 << 13
AUTOC_10G_PMA_PMD_MASK = 0x3 << 7
AUTOC_AN_RESTART = 0x00001000
LINKS = 0x042A4
LINKS_UP = 0x40000000
LINKS_SPEED_MASK = 0x30000000
LINKS_SPEED_10G = 0x30000000
LINKS_SPEED_1G = 0x20000000
LINKS_SPEED_100M = 0x10000000

# -- MAC (§8.2.3) ---------------------------------------------------------------------
HLREG0 = 0x04240
HLREG0_TXCRCEN = 0x00000001
HLREG0_RXCRCSTRP = 0x00000002
HLREG0_JUMBOEN = 0x00000004
HLREG0_TXPADEN = 0x00000400
MAXFRS = 0x04268
MAXFRS_MFS_SHIFT = 16

# -- receive (§4.6.7, §8.2.3) ---------------------------------------------------------
RXCTRL = 0x03000
RXCTRL_RXEN = 0x00000001
RDRXCTL = 0x02F00
RDRXCTL_CRCSTRIP = 0x00000002
RDRXCTL_DMAIDONE = 0x00000008
FCTRL = 0x05080
FCTRL_MPE = 0x00000100
FCTRL_UPE = 0x00000200
FCTRL_BAM = 0x00000400
RAL0 = 0x05400
RAH0 = 0x05404
RAH_AV = 0x80000000
MRQC = 0x0EC80
MRQC_RSS = 0x00000001  # MRQE (3:0) = RSS only: flows spread over the RX queues
SRRCTL_BSIZEPACKET_MASK = 0x0000001F  # 1 KiB units
SRRCTL_DESCTYPE_MASK = 0x0E000000
SRRCTL_DESCTYPE_LEGACY = 0x00000000
SRRCTL_DESCTYPE_ADV_ONEBUF = 0x02000000
SRRCTL_DROP_EN = 0x10000000
RXDCTL_ENABLE = 0x02000000
RXPBSIZE0 = 0x03C00
DCA_RXCTRL_BIT12 = 0x00001000


def RDBAL(i: int) -> int:  # datasheet register names
    return 0x01000 + 0x40 * i


def RDBAH(i: int) -> int:
    return 0x01004 + 0x40 * i


def RDLEN(i: int) -> int:
    return 0x01008 + 0x40 * i


def RDH(i: int) -> int:
    return 0x01010 + 0x40 * i


def RDT(i: int) -> int:
    return 0x01018 + 0x40 * i


def RXDCTL(i: int) -> int:
    return 0x01028 + 0x40 * i


def SRRCTL(i: int) -> int:  # queues 0..15
    return 0x02100 + 4 * i


def DCA_RXCTRL(i: int) -> int:  # queues 0..15
    return 0x02200 + 4 * i


def RXPBSIZE(i: int) -> int:
    return 0x03C00 + 4 * i


# -- transmit (§4.6.8, §8.2.3) -----------------------------------------------------------
DMATXCTL = 0x04A80
DMATXCTL_TE = 0x00000001
DTXMXSZRQ = 0x08100
RTTDCS = 0x04900
RTTDCS_ARBDIS = 0x00000040
TXDCTL_ENABLE = 0x02000000


def TDBAL(i: int) -> int:
    return 0x06000 + 0x40 * i


def TDBAH(i: int) -> int:
    return 0x06004 + 0x40 * i


def TDLEN(i: int) -> int:
    return 0x06008 + 0x40 * i


def TDH(i: int) -> int:
    return 0x06010 + 0x40 * i


def TDT(i: int) -> int:
    return 0x06018 + 0x40 * i


def TXDCTL(i: int) -> int:
    return 0x06028 + 0x40 * i


def TXPBSIZE(i: int) -> int:
    return 0x0CC00 + 4 * i


# -- statistics, clear on read (§8.2.3.23) ------------------------------------------------
CRCERRS = 0x04000
GPRC = 0x04074
BPRC = 0x04078
MPRC = 0x0407C
GPTC = 0x04080
GORCL = 0x04088  # read the low dword first: it latches the high one (GORCH)
GORCH = 0x0408C
GOTCL = 0x04090
GOTCH = 0x04094
RUC = 0x040A4
ROC = 0x040AC
TPR = 0x040D0
TPT = 0x040D4
STATS_FIRST = 0x03FA0  # every clear-on-read register lies in [STATS_FIRST, STATS_END)
STATS_END = 0x04100


def MPC(i: int) -> int:  # missed packets, per packet buffer 0..7
    return 0x03FA0 + 4 * i


BAR_SIZE = 0x20000  # 128 KiB covers every register up to EEC

# -- descriptors (16 bytes, little-endian) ------------------------------------------------
DESC_BYTES = 16
# RX read format (§7.1.6): pkt_addr at 0-7, hdr_addr at 8-15.
# RX advanced write-back (§7.1.6): status_error at 8-11, length at 12-13.
RXD_STATUS_OFFSET = 8
RXD_LENGTH_OFFSET = 12
RXD_STAT_DD = 0x01
RXD_STAT_EOP = 0x02
RXD_ERR_RXE = 0x20000000  # model: buffer outside DMA memory (length 0)
# RX legacy write-back (§7.1): length at 8-9, status byte at 12.
RXD_LEGACY_LENGTH_OFFSET = 8
RXD_LEGACY_STATUS_OFFSET = 12
# TX advanced data descriptor (§7.2.3.2.4): buffer_addr 0-7, cmd_type_len 8-11,
# olinfo_status 12-15; write-back (§7.2.3): DD in the status dword at 12-15.
TXD_CMD_OFFSET = 8
TXD_OLINFO_OFFSET = 12
TXD_STATUS_OFFSET = 12
TXD_DTYP_MASK = 0x00F00000
TXD_DTYP_CTXT = 0x00200000
TXD_DTYP_DATA = 0x00300000
TXD_CMD_EOP = 0x01000000
TXD_CMD_IFCS = 0x02000000
TXD_CMD_RS = 0x08000000
TXD_CMD_DEXT = 0x20000000
TXD_PAYLEN_SHIFT = 14
TXD_STAT_DD = 0x01
