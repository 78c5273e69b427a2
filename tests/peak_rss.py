"""Peak RSS of a child process, read by the child itself: code to prepend to a child script.

Not ``ru_maxrss``: on Linux it carries over across exec, so a child forked from a
large pytest process would report its parent's size. ``VmHWM`` in /proc/self/status
is the high-water mark of the child's own process image.
"""

PEAK_RSS_FUNCTION = '''
def peak_rss_mb():
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
'''
