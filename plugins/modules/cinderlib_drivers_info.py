#!/usr/bin/python
# Copyright: contributors to the cinderlib.storage collection
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r'''
module: cinderlib_drivers_info
short_description: List the Cinder volume drivers, or one driver's options and their JSON Schema
version_added: 0.1.0
description:
  - Without O(driver), lists the volume drivers that the Cinder installed on the managed node
    ships and can load (a driver whose own Python requirements are missing is left out).
  - With O(driver), returns that driver's options, the ones a O(backend) of this driver may set
    (its own options and the options common to every Cinder backend), and the JSON Schema
    (draft 2020-12) that the other modules validate a O(backend) against before the driver is
    touched.
  - Works on no backend and changes nothing. It is part of the C(cinderlib) action group and
    accepts the collection's shared options, so that C(module_defaults) for
    C(group/cinderlib.storage.cinderlib) apply to it, but ignores them.
author:
  - cinderlib.storage developers (@cinderlib)
extends_documentation_fragment:
  # First: its backend option wins over the shared fragment's.
  - cinderlib.storage.cinderlib.no_backend
  - cinderlib.storage.cinderlib
options:
  driver:
    description:
      - A driver's class name, such as V(LVMVolumeDriver), or its class path, such as
        V(cinder.volume.drivers.lvm.LVMVolumeDriver) (the C(volume_driver) of a backend).
      - A class name is looked up in Cinder's sources, so that only that driver is imported; a
        name that is no driver fails, naming the closest driver class names.
    type: str
attributes:
  check_mode:
    support: full
    description: The module changes nothing.
  diff_mode:
    support: none
    description: The module changes nothing.
seealso:
  - module: cinderlib.storage.cinderlib_backend_facts
'''

EXAMPLES = r'''
- name: List the drivers Cinder ships
  cinderlib.storage.cinderlib_drivers_info:
  register: cinder_drivers

- name: Show the supported ones
  ansible.builtin.debug:
    msg: "{{ cinder_drivers.drivers | selectattr('supported') | map(attribute='class_name') | list }}"

- name: Options of the XtremIO iSCSI driver and their JSON Schema
  cinderlib.storage.cinderlib_drivers_info:
    driver: XtremIOISCSIDriver
  register: xtremio

- name: Save the schema, for an editor or a CI check of backend files
  ansible.builtin.copy:
    content: "{{ xtremio.driver.schema | to_nice_json }}"
    dest: /tmp/xtremio-backend.schema.json
    mode: '0644'
  delegate_to: localhost

# Ad-hoc:
#   ansible HOST -m cinderlib.storage.cinderlib_drivers_info -a driver=LVMVolumeDriver
'''

RETURN = r'''
drivers:
  description: The drivers Cinder ships and can load here, sorted by class name.
  returned: when O(driver) is not given
  type: list
  elements: dict
  sample:
    - class_name: LVMVolumeDriver
      fqn: cinder.volume.drivers.lvm.LVMVolumeDriver
      version: 3.0.0
      supported: true
      description: Executes commands relating to Volumes.
  contains:
    class_name:
      description: Class name of the driver.
      type: str
    fqn:
      description: Class path of the driver, the C(volume_driver) of a backend.
      type: str
    version:
      description: Version of the driver.
      type: str
    supported:
      description:
        - Whether Cinder counts the driver as supported; C(false) for drivers whose vendor CI
          stopped reporting (Cinder then needs C(enable_unsupported_driver)).
      type: bool
    description:
      description: First line of the driver's documentation.
      type: str
driver:
  description: The driver named by O(driver), with its options and their JSON Schema.
  returned: when O(driver) is given
  type: dict
  sample:
    class_name: LVMVolumeDriver
    fqn: cinder.volume.drivers.lvm.LVMVolumeDriver
    version: 3.0.0
    supported: true
    description: Executes commands relating to Volumes.
    options:
      - name: lvm_type
        type: string
        oslo_type: String
        default: auto
        description: Type of LVM volumes to deploy; (default, thin, or auto). Auto defaults to thin if thin is
          supported.
        secret: false
        driver_option: true
        deprecated: false
        choices: [default, thin, auto]
    schema:
      $schema: https://json-schema.org/draft/2020-12/schema
      title: LVMVolumeDriver backend configuration
      type: object
      properties:
        lvm_type:
          type: string
          enum: [default, thin, auto]
          default: auto
          x-oslo-type: String
      required: [volume_backend_name, volume_driver]
      additionalProperties: false
  contains:
    class_name:
      description: Class name of the driver.
      type: str
    fqn:
      description: Class path of the driver.
      type: str
    version:
      description: Version of the driver.
      type: str
    supported:
      description: Whether Cinder counts the driver as supported.
      type: bool
    description:
      description: First line of the driver's documentation.
      type: str
    options:
      description:
        - The options a backend of this driver may set, sorted by name.
        - Secret options (C(secret=true)) have no default shown.
      type: list
      elements: dict
      contains:
        name:
          description: Option name, a key of O(backend).
          type: str
        type:
          description: JSON type of the value (C(string), C(integer), C(number), C(boolean), C(array), C(object)).
          type: raw
        oslo_type:
          description: The oslo.config type (C(String), C(Integer), C(Port), C(List), C(Dict)...).
          type: str
        default:
          description: Default value, C(null) when there is none or the option is secret.
          type: raw
        description:
          description: The option's help text.
          type: str
        secret:
          description:
            - Whether the option holds a credential (oslo marks it secret, or its name looks like a
              password, token, key...). Its value is kept out of results, logs and the state store.
          type: bool
        driver_option:
          description: Whether the driver declares the option itself (C(false) for common backend options).
          type: bool
        deprecated:
          description: Whether the option is deprecated for removal.
          type: bool
        choices:
          description: The values the option accepts, when it has a fixed set.
          type: list
          returned: when the option has choices
        minimum:
          description: Smallest accepted value.
          type: raw
          returned: when the option has one
        maximum:
          description: Largest accepted value.
          type: raw
          returned: when the option has one
    schema:
      description:
        - JSON Schema (draft 2020-12) of a backend configuration for this driver.
        - Each property has C(type), C(description), C(default), C(enum), C(minimum) and
          C(maximum) as oslo.config defines them; secret options have C(writeOnly=true) and
          C(x-secret=true); C(x-oslo-type) names the oslo.config type. Unknown options are not
          allowed (C(additionalProperties=false)); C(volume_backend_name) and C(volume_driver)
          are required.
        - Strings that oslo.config converts (V('5'), V('true'), V('a,b')) are accepted by the
          modules; validate converted values against this schema.
      type: dict
'''

from ansible_collections.cinderlib.storage.plugins.module_utils.ansible_module import CinderlibModule
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.drivers import driver_info, list_drivers


def run(module: CinderlibModule) -> dict:
    if module.params['driver'] is None:
        return {'changed': False, 'drivers': list_drivers()}
    return {'changed': False, 'driver': driver_info(module.params['driver'])}


def main() -> None:
    module = CinderlibModule(argument_spec=dict(driver=dict(type='str')), needs_backend=False)
    module.run(run)


if __name__ == '__main__':
    main()
