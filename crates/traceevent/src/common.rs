//! The fields every record starts with, at the offsets every event's
//! format gives them (`include/linux/trace_events.h`, struct
//! trace_entry): `common_type` (u16 at 0), `common_flags` (u8 at 2),
//! `common_preempt_count` (u8 at 3) and `common_pid` (i32 at 4). A record
//! too short for one reads as 0 (no event) there.

/// The record's event id (`common_type`), `None` when it has no 2 bytes.
pub fn common_type(record: &[u8]) -> Option<u16> {
    record.get(..2).map(|b| u16::from_le_bytes([b[0], b[1]]))
}

/// The record's `common_flags` (irqs-off, need-resched, hard/soft irq...).
pub fn common_flags(record: &[u8]) -> u8 {
    record.get(2).copied().unwrap_or(0)
}

/// The record's `common_preempt_count`.
pub fn common_preempt_count(record: &[u8]) -> u8 {
    record.get(3).copied().unwrap_or(0)
}

/// The pid of the task that wrote the record (`common_pid`).
pub fn common_pid(record: &[u8]) -> i32 {
    record
        .get(4..8)
        .map_or(0, |b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_common_fields_are_read_at_their_offsets() {
        let mut record = vec![0x2a, 0x01, 0x0d, 0x21];
        record.extend_from_slice(&(-7i32).to_le_bytes());
        record.extend_from_slice(b"payload");
        assert_eq!(common_type(&record), Some(0x12a));
        assert_eq!(common_flags(&record), 0x0d);
        assert_eq!(common_preempt_count(&record), 0x21);
        assert_eq!(common_pid(&record), -7);
    }

    #[test]
    fn a_short_record_reads_as_zero() {
        assert_eq!(common_type(&[1]), None);
        assert_eq!(common_flags(&[1]), 0);
        assert_eq!(common_preempt_count(&[1, 2, 3]), 0);
        assert_eq!(common_pid(&[1, 2, 3, 4, 5, 6, 7]), 0);
    }
}
