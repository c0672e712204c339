#!/usr/bin/env python3
"""Brings the functions an upgrade script recreates in line with sql/.

Several changes may recreate the same function in updates/mps--0.1.0--0.2.0/;
the last file that does wins, so its copy must be the function as sql/ now
defines it (the upgrade test's catalog diff fails otherwise). This rewrites
that last copy of each function from sql/ and prints what it changed.
Run from anywhere: python3 test/upgrade/sync_functions.py
"""
import glob
import os
import re

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), '..', '..'))
def blocks(text):
    out=[]
    for m in re.finditer(r'CREATE (OR REPLACE )?FUNCTION\s+([a-z_]+\.[a-z_0-9]+)\s*\(', text):
        start=m.start()
        semi=text.find(';', m.end())
        dq=re.search(r'\$([a-zA-Z_]*)\$', text[m.end():])
        if dq and m.end()+dq.start() < semi:
            tag=dq.group(0)
            open_at=m.end()+dq.start()
            close=text.find(tag, open_at+len(tag))
            end=text.find(';', close+len(tag))+1
        else:
            end=semi+1
        out.append((m.group(2), start, end, bool(m.group(1))))
    return out
sqltext={}
for f in sorted(glob.glob(ROOT+'/sql/*.sql')):
    t=open(f).read()
    for name,s,e,_ in blocks(t):
        sqltext[name]=t[s:e]
files=sorted(glob.glob(ROOT+'/updates/mps--0.1.0--0.2.0/*.sql'))
last={}
for f in files:
    for name,s,e,rep in blocks(open(f).read()):
        last[name]=f
changed=[]
for f in files:
    t=open(f).read()
    bl=[b for b in blocks(t) if last[b[0]]==f and b[0] in sqltext]
    for name,s,e,rep in reversed(bl):
        new=sqltext[name]
        if rep: new=re.sub(r'^CREATE FUNCTION', 'CREATE OR REPLACE FUNCTION', new)
        if t[s:e]!=new:
            t=t[:s]+new+t[e:]; changed.append((f.split('/')[-1],name))
    open(f,'w').write(t)
for c in changed: print(*c)
