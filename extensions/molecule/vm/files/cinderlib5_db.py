"""A cinderlib 5.x program on the drop-in wheel, run in the VM by cinderlib5_db.yml.

    python cinderlib5_db.py DB_URL BACKEND_JSON VOLUME_ID

Opens a database that the real cinderlib 5.2.0 wrote (tests/fixtures/
cinderlib5_db.sqlite), snapshots the imported volume on LVM with
device-mapper (what the CI host's metadata-only LVM can't), and deletes that
snapshot and the one cinderlib recorded. Prints one JSON line.
"""

import json
import subprocess
import sys

import cinderlib  # the drop-in wheel: no line of this program names the collection

url, backend, volume_id = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
cinderlib.setup(persistence_config={'storage': 'db', 'connection': url})
lvm = cinderlib.Backend(**backend)
volume = cinderlib.Volume.get_by_id(volume_id)
found = {'module': cinderlib.__file__, 'version': cinderlib.__version__,
         'volumes': sorted(v.display_name for v in lvm.volumes),
         'old_snapshots': [s.display_name for s in volume.snapshots]}
snapshot = volume.create_snapshot(name='vm-snap-of-cl5-data')
lvs = subprocess.run(['lvs', '--noheadings', '-o', 'lv_name,origin', backend['volume_group']],
                     capture_output=True, text=True, check=True).stdout.split()
found['snapshot_lv_origin'] = lvs[lvs.index('_snapshot-%s' % snapshot.id) + 1]
for made in list(volume.snapshots):
    made.delete()
found['snapshots_left'] = len(cinderlib.Volume.get_by_id(volume_id).snapshots)
found['ansible_collections'] = sorted(name for name in sys.modules if name.startswith('ansible_collections'))
print(json.dumps(found))
