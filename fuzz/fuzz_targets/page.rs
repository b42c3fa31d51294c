//! Ring-buffer sub-buffers: any bytes, under any layout, give records or an
//! error, never a panic or a hang, and every record lies inside the
//! committed data, after the one before it.

#![no_main]

use kscope_traceevent::{PageLayout, SubBuffer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    // The first two bytes choose the layout: mostly the real ones, and now
    // and then one the decoder must refuse.
    let Some((&[size, offset], bytes)) = input.split_first_chunk::<2>() else {
        return;
    };
    let layout = match size % 4 {
        0 | 1 => PageLayout::X86_64,
        2 => PageLayout {
            commit_size: 4,
            data_offset: 12,
        },
        _ => PageLayout {
            commit_size: usize::from(size >> 2),
            data_offset: usize::from(offset),
        },
    };
    let Ok(sub) = SubBuffer::parse(bytes, &layout) else {
        return;
    };
    assert!(layout.data_offset + sub.data_len() <= bytes.len());
    let mut next_free = layout.data_offset;
    for record in sub.records() {
        let Ok(record) = record else {
            continue;
        };
        assert!(record.offset >= next_free);
        let start = record.data.as_ptr() as usize - bytes.as_ptr() as usize;
        assert!(start > record.offset);
        assert!(record.data.len() >= 4, "common_type is always there");
        next_free = start + record.data.len();
        assert!(next_free <= layout.data_offset + sub.data_len());
    }
});
