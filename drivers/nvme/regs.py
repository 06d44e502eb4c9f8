"""NVMe register offsets, fields and status names (NVMe Base Specification 1.4).

Purpose: constants shared by the driver's files; no state. `NvmeError` is what the
driver raises for a command that completed with an error status or a controller that
reports a fatal status (CSTS.CFS) or times out.
"""

CAP, VS, CC, CSTS, AQA, ASQ, ACQ, DBS = 0x00, 0x08, 0x14, 0x1C, 0x24, 0x28, 0x30, 0x1000

CC_EN = 1
CC_IOSQES = 6 << 16  # §3.1.5: I/O SQ entry size 2^6 = 64 bytes
CC_IOCQES = 4 << 20  # §3.1.5: I/O CQ entry size 2^4 = 16 bytes
CSTS_RDY, CSTS_CFS = 1, 2

# Admin opcodes (§5) and NVM opcodes (§6)
DELETE_SQ, CREATE_SQ, GET_LOG_PAGE, DELETE_CQ, CREATE_CQ, IDENTIFY = 0x00, 0x01, 0x02, 0x04, 0x05, 0x06
SET_FEATURES, GET_FEATURES = 0x09, 0x0A
FLUSH, WRITE, READ, WRITE_ZEROES = 0x00, 0x01, 0x02, 0x08
FEATURE_NUM_QUEUES = 0x07

STATUS_NAMES = {
    0x001: "Invalid Command Opcode", 0x002: "Invalid Field in Command",
    0x004: "Data Transfer Error", 0x00B: "Invalid Namespace or Format",
    0x013: "PRP Offset Invalid", 0x080: "LBA Out of Range",
    0x100: "Completion Queue Invalid", 0x101: "Invalid Queue Identifier",
    0x102: "Invalid Queue Size", 0x109: "Invalid Log Page",
    0x10C: "Invalid Queue Deletion",
}


def status_text(status: int) -> str:
    name = STATUS_NAMES.get(status, "unknown status")
    return f"status {status:#05x} (SCT {status >> 8}, SC {status & 0xFF:#04x}: {name})"


class NvmeError(Exception):
    """A failed NVMe command or a controller in trouble."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status
