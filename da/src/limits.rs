//! Every bound of a blob, with its reason.

/// Payload bytes per field element: 31, so that every element (a byte of
/// zero, then 31 bytes, big-endian) is below the BLS12-381 scalar field's
/// modulus whatever the bytes. The commitment then needs no check that
/// could fail on user data.
pub const PAYLOAD_BYTES_PER_ELEMENT: usize = 31;

/// Field elements per segment: one KZG blob of the Ethereum setup.
pub const ELEMENTS_PER_SEGMENT: usize = c_kzg::FIELD_ELEMENTS_PER_BLOB;

/// Payload bytes of one segment (126,976): a blob is cut into segments of
/// this size, and only the last is padded, to its own end.
pub const SEGMENT_PAYLOAD_BYTES: usize = ELEMENTS_PER_SEGMENT * PAYLOAD_BYTES_PER_ELEMENT;

/// Field elements per cell: the unit one opening proves.
pub const ELEMENTS_PER_CELL: usize = c_kzg::FIELD_ELEMENTS_PER_CELL;

/// Cells that hold a segment's own data (the extension doubles them; the
/// second half is redundancy, never payload).
pub const DATA_CELLS_PER_SEGMENT: usize = ELEMENTS_PER_SEGMENT / ELEMENTS_PER_CELL;

/// Payload bytes one cell carries (1,984).
pub const CELL_PAYLOAD_BYTES: usize = ELEMENTS_PER_CELL * PAYLOAD_BYTES_PER_ELEMENT;

/// Largest blob: 128 MiB, four times the 32 MiB a rollup batch commonly
/// needs, and small enough that its commitment list (1,058 x 48 bytes)
/// stays a small certificate.
pub const MAX_BLOB_BYTES: usize = 128 << 20;

/// Most segments of a blob (of [`MAX_BLOB_BYTES`]): checked when a
/// commitment is decoded, before anything is allocated.
pub const MAX_SEGMENTS: usize = MAX_BLOB_BYTES.div_ceil(SEGMENT_PAYLOAD_BYTES);
