//! `kscope trace stream` on Debian's kernel, which lists data symbols in
//! kallsyms (CONFIG_KALLSYMS_ALL): kernel variables that print fmts read
//! (`vmemmap_base` in kmem page events) come through BPF there.

use crate::succeeded;

#[test]
fn page_events_print_their_struct_page_address() {
    let Some(stdout) = succeeded("stream-pages") else {
        return;
    };
    let pages: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains(" mm_page_alloc: "))
        .collect();
    assert!(!pages.is_empty(), "no mm_page_alloc lines:\n{stdout}");
    for line in &pages {
        let page = line
            .split("page=")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or("");
        assert!(
            page.len() == 16 && page.chars().all(|c| c.is_ascii_hexdigit()),
            "page address not resolved: {line}"
        );
    }
}
